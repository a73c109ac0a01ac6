"""Use cases shared by the API, the console, the CLI and jobs. They take `Deps` (or stores)
and plain values, never aiohttp requests or applications."""
