"""Load tests for the gateway: locust scenarios, a raw FastAPI + Redis baseline and a headless runner."""
