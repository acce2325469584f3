"""python -m services.retriever: the retriever gRPC server."""

from services.core.optional import require_role

require_role("retriever")  # before the imports below, which need its extra

from services.core.grpc_server import run_service
from services.retriever.config import RetrieverSettings
from services.retriever.servicer import RetrieverService

if __name__ == "__main__":
    raise SystemExit(run_service("retriever", RetrieverSettings, RetrieverService))
