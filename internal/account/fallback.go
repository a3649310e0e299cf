package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// maxOtherVersions bounds how many versions besides AWSCURRENT, AWSPENDING
// and AWSPREVIOUS a single-user setSecret tries: each costs a read and a
// login.
const maxOtherVersions = 5

// loginWithOtherVersion is the last resort of a single-user setSecret whose
// AWSCURRENT, AWSPENDING and AWSPREVIOUS all fail: a rotation was abandoned
// after its setSecret changed the password, and an operator took AWSPENDING
// off that version by hand so that a new rotation could start. The only
// password the server accepts then sits on a version without a label. It
// tries the other versions, newest first and at most maxOtherVersions of
// them, that name the same user and server. It returns no Session when
// none logs in, with the number it tried.
func (t *Target) loginWithOtherVersion(ctx context.Context, req *rotation.StepRequest, cur Account) (loggedIn, int, error) {
	ids, err := t.otherVersionIDs(ctx, req)
	if err != nil {
		return loggedIn{}, 0, err
	}
	tried := 0
	for _, id := range ids {
		v, err := req.Versions.ByID(ctx, id)
		if err != nil {
			// A placeholder without a value, or a version deleted since.
			req.Log.LogAttrs(ctx, slog.LevelDebug, "other version unreadable: skipped", slog.String("other_version_id", id), slog.Any("error", err))
			continue
		}
		a, err := t.parse("version "+id, v.Value)
		if err != nil || !sameUser(cur, a) {
			req.Log.LogAttrs(ctx, slog.LevelWarn, "other version names another user or server: skipped", slog.String("other_version_id", id))
			continue
		}
		tried++
		s, err := t.login(ctx, a)
		if err == nil {
			req.Log.LogAttrs(ctx, slog.LevelWarn, "AWSCURRENT and AWSPREVIOUS do not log in; a version without those labels does",
				slog.String("user", cur.Username), slog.String("other_version_id", id))
			return loggedIn{s, "version " + id, a}, tried, nil
		}
		if !errors.Is(err, ErrCannotLogIn) {
			return loggedIn{}, tried, err
		}
	}
	return loggedIn{}, tried, nil
}

// otherVersionIDs lists the versions of the secret, labelled or not, other
// than AWSCURRENT, AWSPREVIOUS and the pending one (all tried before),
// newest first, at most maxOtherVersions of them. DescribeSecret lists only
// labelled versions on AWS, hence ListSecretVersionIds with
// IncludeDeprecated.
func (t *Target) otherVersionIDs(ctx context.Context, req *rotation.StepRequest) ([]string, error) {
	var all []smtypes.SecretVersionsListEntry
	p := secretsmanager.NewListSecretVersionIdsPaginator(t.sm, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(req.Secret.ARN), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100),
	})
	// Secrets Manager keeps about 100 unlabelled versions: two pages at most
	// in practice; the bound keeps a misbehaving endpoint from looping.
	for page := 0; p.HasMorePages() && page < 5; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", req.Secret.ARN, err)
		}
		all = append(all, out.Versions...)
	}
	// Newest first. Emulators give creation dates in whole seconds (moto:
	// the time of the call) and list oldest first, so ties keep the
	// reverse of the listed order.
	slices.Reverse(all)
	slices.SortStableFunc(all, func(a, b smtypes.SecretVersionsListEntry) int {
		return aws.ToTime(b.CreatedDate).Compare(aws.ToTime(a.CreatedDate))
	})
	var ids []string
	for _, v := range all {
		id := aws.ToString(v.VersionId)
		if id == "" || id == req.Secret.Token ||
			slices.Contains(v.VersionStages, labelCurrent) || slices.Contains(v.VersionStages, labelPrevious) {
			continue
		}
		ids = append(ids, id)
		if len(ids) == maxOtherVersions {
			break
		}
	}
	return ids, nil
}
