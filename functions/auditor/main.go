// Command auditor is the rotation auditor: a Lambda function that
// EventBridge runs on a schedule (hourly by default). It is not a rotation
// function and does not use the rotation engine: it builds on
// internal/audit, reads the metadata of the secrets in scope (never a
// value) and writes a JSON log line and an Embedded Metric Format record per
// finding: rotation overdue, AWSPENDING stuck, rotation off on a secret
// tagged as requiring it, a certificate about to expire, an access key past
// its age, a secret it may not read. Its settings are environment
// variables; see internal/audit.
package main

import "github.com/secrets-rotation/secrets-rotation/internal/audit"

func main() {
	audit.Start()
}
