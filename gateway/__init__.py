"""The thin edge for mobile clients: HTTP/JSON transcoding and gRPC pass-through. No business rules, no database."""
