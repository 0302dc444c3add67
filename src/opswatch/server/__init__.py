"""The opswatch server (``pip install 'opswatch[server]'``). The SDK never imports this package."""
