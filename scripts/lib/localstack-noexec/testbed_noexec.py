"""A LocalStack Lambda runtime executor that runs no code.

LocalStack's free edition runs Lambda code only in Docker, which the test bed
does not have. With this executor (LAMBDA_RUNTIME_EXECUTOR=testbed-noexec) a
function's version is prepared at once, so CreateFunction reaches State
Active and CloudFormation can deploy a stack of functions. An invocation
returns at once the function error "TestbedNoExec" (Invoke answers 200 with
FunctionError, as for a function that failed), so a caller such as
RotateSecret goes on at once; an execution environment that failed to start
would be a service error that boto's retries repeat for seconds. The
project's own tests run function code under aws-lambda-rie instead.
"""

import json

from localstack.services.lambda_.invocation.lambda_models import InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

ERROR = {
    "errorType": "TestbedNoExec",
    "errorMessage": "the test bed's Lambda executor runs no code "
    "(LAMBDA_RUNTIME_EXECUTOR=testbed-noexec); run functions under aws-lambda-rie",
}


class NoExecRuntimeExecutor(RuntimeExecutor):
    def start(self, env_vars):
        pass

    def stop(self):
        pass

    def get_address(self):
        return "127.0.0.1"

    def get_endpoint_from_executor(self):
        return "127.0.0.1"

    def get_runtime_endpoint(self):
        return "http://127.0.0.1:0/_localstack_lambda/" + self.id

    def invoke(self, payload):
        return InvocationResult(
            request_id=payload["invoke-id"],
            payload=json.dumps(ERROR).encode(),
            is_error=True,
            logs=ERROR["errorMessage"] + "\n",
        )

    def get_logs(self):
        return ""

    @classmethod
    def prepare_version(cls, function_version):
        pass

    @classmethod
    def cleanup_version(cls, function_version):
        pass

    @classmethod
    def validate_environment(cls):
        return True


class NoExecPlugin(RuntimeExecutorPlugin):
    name = "testbed-noexec"

    def load(self, *args, **kwargs):
        return NoExecRuntimeExecutor
