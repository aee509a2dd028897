"""The Cloudauth RPC wire: one typed request, its JSON/XML answers and its OpenAPI description; no I/O."""
