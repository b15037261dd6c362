"""Back Market seller API: the client the exports use, and a local simulator of the API."""
