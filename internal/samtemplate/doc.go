// Package samtemplate holds the tests of the deployment files at the root of
// the repository: template.yaml (AWS SAM), the Makefile's build-<LogicalId>
// targets that `sam build` runs, and events/. It has no code of its own; the
// tests read the files as a deployer's tools would and fail on anything that
// would deploy a function wrongly or with more permissions than it needs.
package samtemplate
