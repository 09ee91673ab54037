# The dependency layers' build, for sam build (BuildMethod: makefile; each layer's Makefile includes
# this): the pinned wheels for Lambda's python3.13 on arm64, then compiled to bytecode by that
# interpreter (unchecked-hash: used as it is, whatever the zip does to timestamps). sam's pip builder
# ships no bytecode, and Lambda's file system is read-only, so every cold start would compile every
# module it imports (Powertools and pydantic: about 0.8 s of the api's cold start, benchmarks/api.py).
PYTHON_RUNTIME ?= python3.13
WHEELS := --only-binary=:all: --implementation cp --python-version 3.13 --abi cp313 --abi abi3 --abi none \
	--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_34_aarch64
# olefile2.py is olefile's Python 2 module, never imported (and not valid Python 3).
NOT_PYTHON_3 := '/olefile2\.py$$'

define install-layer
$(PYTHON_RUNTIME) -m pip install --quiet --no-compile --disable-pip-version-check $(WHEELS) \
	--target "$(ARTIFACTS_DIR)/python" -r requirements.txt
$(PYTHON_RUNTIME) -m compileall -q -j 0 --invalidation-mode unchecked-hash -x $(NOT_PYTHON_3) \
	"$(ARTIFACTS_DIR)/python"
endef
