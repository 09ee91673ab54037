"""An HTTP client of the impex API (local or deployed): what the CLI and the demo use."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


class ApiError(Exception):
    """An error the API (or the network) returned, as one line a person can read, with the CLI
    command that helps (the API's own hints name HTTP calls)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.hint = _HINTS.get(code or "")


_HINTS = {
    "dataset_not_found": "create it: impex datasets put NAME --schema schema.json (see: impex datasets list)",
    "job_not_found": "list your jobs: impex jobs list",
    "not_found": "list your jobs: impex jobs list",
    "unauthenticated": "pass --token (IMPEX_TOKEN), or for a local stack: impex local token --tenant NAME",
    "invalid_input": "see what the dataset accepts: impex datasets get NAME",
}


class ImpexClient:
    """Calls /api/import-export with a bearer token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON in, JSON out; an error status becomes ApiError with the API's own message."""
        try:
            response = self._session.request(method, self.base_url + path, timeout=self._timeout, **kwargs)
        except requests.RequestException as error:
            raise ApiError(f"cannot reach {self.base_url}: {type(error).__name__}") from None
        if response.status_code >= 400:
            raise ApiError(_error_line(response), code=_error_code(response))
        if response.status_code in (204, 302) or not response.content:
            return {"status": response.status_code, "location": response.headers.get("Location")}
        return response.json()

    # ---- datasets ----------------------------------------------------------------------------------

    def put_dataset(self, name: str, definition: dict[str, Any]) -> Any:
        return self.request("PUT", f"/datasets/{name}", json=definition)

    def datasets(self) -> Any:
        return self.request("GET", "/datasets")["datasets"]

    def dataset(self, name: str) -> Any:
        return self.request("GET", f"/datasets/{name}")

    def delete_dataset(self, name: str) -> Any:
        return self.request("DELETE", f"/datasets/{name}")

    # ---- jobs --------------------------------------------------------------------------------------

    def start_import(
        self,
        path: Path,
        dataset: str,
        *,
        mapping: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        file_format: str | None = None,
    ) -> dict[str, Any]:
        """Create the import job and upload the file with its presigned POST."""
        body: dict[str, Any] = {"dataset": dataset, "fileName": path.name, "options": options or {}}
        if mapping:
            body["mapping"] = mapping
        if file_format:
            body["format"] = file_format
        created = self.request("POST", "/imports", json=body)
        upload = created["upload"]
        with path.open("rb") as handle:
            try:
                response = requests.post(
                    upload["url"],
                    data=upload["fields"],
                    files={"file": (path.name, handle)},
                    timeout=self._timeout,
                )
            except requests.RequestException as error:
                raise ApiError(f"the upload failed: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise ApiError(f"the upload was refused (HTTP {response.status_code}): {response.text[:200]}")
        return created["job"]  # type: ignore[no-any-return]

    def start_export(
        self,
        dataset: str,
        file_format: str,
        *,
        filters: list[dict[str, Any]] | None = None,
        fields: list[str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "dataset": dataset,
            "format": file_format,
            "filters": filters or [],
            "options": options or {},
        }
        if fields:
            body["fields"] = fields
        return self.request("POST", "/exports", json=body)["job"]  # type: ignore[no-any-return]

    def status(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{job_id}/status")  # type: ignore[no-any-return]

    def jobs(self, **query: str) -> Any:
        return self.request("GET", "/jobs", params={k: v for k, v in query.items() if v})

    def cancel(self, job_id: str, *, wait_seconds: float = 0) -> Any:
        return self.request("POST", f"/jobs/{job_id}/cancel", params={"waitSeconds": str(wait_seconds)})

    def retry(self, job_id: str) -> Any:
        return self.request("POST", f"/jobs/{job_id}/retry")

    def commit(self, job_id: str) -> Any:
        return self.request("POST", f"/jobs/{job_id}/commit")

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        interval: float = 0.5,
    ) -> dict[str, Any]:
        """Poll the status until the job ends."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(job_id)
            if on_progress:
                on_progress(status)
            if status["status"] in TERMINAL:
                return status
            if time.monotonic() > deadline:
                raise ApiError(f"job {job_id} is still {status['status']} after {timeout:.0f}s")
            time.sleep(interval)

    def download(self, job_id: str, target: Path, *, which: str = "result") -> Path:
        """Follow the download redirect to the presigned URL and save the file."""
        try:
            response = self._session.get(
                f"{self.base_url}/jobs/{job_id}/download",
                params={"file": which},
                allow_redirects=False,
                timeout=self._timeout,
            )
        except requests.RequestException as error:
            raise ApiError(f"cannot reach {self.base_url}: {type(error).__name__}") from None
        if response.status_code != 302:
            raise ApiError(_error_line(response), code=_error_code(response))
        # The presigned URL carries its own authorization: no bearer token there.
        with requests.get(response.headers["Location"], stream=True, timeout=self._timeout) as file:
            if file.status_code != 200:
                raise ApiError(f"the download failed (HTTP {file.status_code})")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as handle:
                for chunk in file.iter_content(1024 * 1024):
                    handle.write(chunk)
        return target


def _error_code(response: requests.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None


def _error_line(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        line = f"{error.get('message')} ({error.get('code')}, HTTP {response.status_code})"
        details = error.get("details")
        if isinstance(details, list) and details:
            first = details[0]
            if isinstance(first, dict) and "message" in first:
                line += f": {'.'.join(str(p) for p in first.get('loc', []))} {first['message']}"
        return line
    return f"HTTP {response.status_code}: {body.get('message', body) if isinstance(body, dict) else body}"
