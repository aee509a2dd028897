"""Request signatures (RPC v1 HMAC-SHA1 and V3 ACS3-HMAC-SHA256), access keys and nonces."""
