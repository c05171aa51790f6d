"""Pydantic request and response shapes: the API's boundary. The core never imports these."""
