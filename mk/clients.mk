# The real S3 clients the compatibility tests drive (server/test/s3/cli-clients.test.ts): Debian's aws CLI,
# boto3 and rclone. `make test` installs them when missing (as root) or says how.
.PHONY: client-tools

client-tools: ## install the aws CLI, boto3 and rclone for the S3 compatibility tests (Debian packages)
	@bash scripts/tools/client-tools.sh

TEST_TARGETS += client-tools
