package secretstore

import "testing"

func TestMetadataLabelDecisions(t *testing.T) {
	m := Metadata{Stages: map[string][]string{
		"v1": {StagePrevious},
		"v2": {StageCurrent},
		"v3": {StagePending},
		"v0": {},
	}}
	for stage, want := range map[string]string{StageCurrent: "v2", StagePending: "v3", StagePrevious: "v1"} {
		if got, ok := m.VersionWithStage(stage); !ok || got != want {
			t.Errorf("VersionWithStage(%s) = %q, %v; want %q", stage, got, ok, want)
		}
	}
	if _, ok := m.VersionWithStage("CUSTOM"); ok {
		t.Error("found a version for a stage no version carries")
	}
	if !m.HasStage("v3", StagePending) || m.HasStage("v3", StageCurrent) || m.HasStage("v0", StageCurrent) || m.HasStage("nope", StagePending) {
		t.Error("HasStage answered wrongly")
	}
}
