# Identity and authorization (server/src/auth): its tests also run in `make unit`.
.PHONY: test-auth

test-auth: $(NPM_STAMP) ## authorizer tests against the fake Kubernetes API (TokenReview, SubjectAccessReview)
	npx vitest run server/test/auth
