"""python -m services.rewriter: the rewriter gRPC server."""

from services.core.optional import require_role

require_role("rewriter")  # before the imports below, which need its extra

from services.core.grpc_server import run_service
from services.rewriter.config import RewriterSettings
from services.rewriter.servicer import RewriterService

if __name__ == "__main__":
    raise SystemExit(run_service("rewriter", RewriterSettings, RewriterService))
