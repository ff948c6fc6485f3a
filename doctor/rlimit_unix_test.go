//go:build unix

package doctor

import "testing"

func TestRaiseNoFile(t *testing.T) {
	soft, hard, err := RaiseNoFile()
	if err != nil {
		t.Fatal(err)
	}
	if soft == 0 || soft > hard {
		t.Fatalf("RaiseNoFile() = soft %d, hard %d", soft, hard)
	}
	gotSoft, gotHard, err := Live().Rlimit()
	if err != nil {
		t.Fatal(err)
	}
	if gotSoft != soft || gotHard != hard {
		t.Errorf("after RaiseNoFile the limits are %d/%d, it said %d/%d", gotSoft, gotHard, soft, hard)
	}
	if hard != Unlimited && soft != hard {
		t.Errorf("soft %d not raised to hard %d", soft, hard)
	}
	// A second call changes nothing.
	if s2, h2, err := RaiseNoFile(); err != nil || s2 != soft || h2 != hard {
		t.Errorf("second RaiseNoFile() = %d, %d, %v", s2, h2, err)
	}
}
