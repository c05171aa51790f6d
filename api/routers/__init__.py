"""HTTP routers, one module per area. Routers parse, call one service function and return."""
