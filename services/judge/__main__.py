"""python -m services.judge: the judge gRPC server."""

from services.core.optional import require_role

require_role("judge")  # before the imports below, which need its extra

from services.core.grpc_server import run_service
from services.judge.config import JudgeSettings
from services.judge.servicer import JudgeService

if __name__ == "__main__":
    raise SystemExit(run_service("judge", JudgeSettings, JudgeService))
