"""The HTTP API: routes, request and response models, the use cases behind them."""
