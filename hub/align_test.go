package hub

import (
	"errors"
	"slices"
	"testing"
)

func TestAlign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before: messages published with PublishAt in epoch "e1" at these offsets.
		before []uint64
		align  Position
		want   error
		// then: where the channel stands, and what since {offset, epoch} recovers.
		wantPos       Position
		since         Position
		wantRecovered bool
		wantBacklog   []uint64
	}{
		{
			name: "empty channel adopts the cluster epoch", align: Position{0, "e1"},
			wantPos: Position{0, "e1"}, since: Position{0, "e1"}, wantRecovered: true,
		},
		{
			name: "already there is stale", before: []uint64{1, 2}, align: Position{2, "e1"}, want: ErrStale,
			wantPos: Position{2, "e1"}, since: Position{0, "e1"}, wantRecovered: true, wantBacklog: []uint64{1, 2},
		},
		{
			name: "behind is stale", before: []uint64{1, 2}, align: Position{1, "e1"}, want: ErrStale,
			wantPos: Position{2, "e1"}, since: Position{1, "e1"}, wantRecovered: true, wantBacklog: []uint64{2},
		},
		{
			name: "a skipped message drops history", before: []uint64{1, 2}, align: Position{3, "e1"},
			wantPos: Position{3, "e1"}, since: Position{1, "e1"}, wantRecovered: false,
		},
		{
			name: "skipped message, caught up since it", before: []uint64{1, 2}, align: Position{3, "e1"},
			wantPos: Position{3, "e1"}, since: Position{3, "e1"}, wantRecovered: true,
		},
		{
			name: "another epoch replaces history", before: []uint64{1, 2}, align: Position{0, "e2"},
			wantPos: Position{0, "e2"}, since: Position{2, "e1"}, wantRecovered: false,
		},
		{
			name: "empty position", align: Position{5, ""}, want: ErrBadPosition,
			since: Position{0, "x"}, wantRecovered: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Config{})
			for _, off := range tc.before {
				if _, err := h.PublishAt("c", off, "e1", []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.Align("c", tc.align); !errors.Is(err, tc.want) {
				t.Fatalf("Align(%+v) = %v, want %v", tc.align, err, tc.want)
			}
			l := &inlineLoop{}
			since := tc.since
			pos, backlog, ok, _ := h.Subscribe(l, "c", &recorder{}, &since)
			if tc.wantPos.Epoch != "" && pos != tc.wantPos {
				t.Errorf("position %+v, want %+v", pos, tc.wantPos)
			}
			if ok != tc.wantRecovered || !slices.Equal(backlogOffsets(backlog), tc.wantBacklog) {
				t.Errorf("recover since %+v: %v %v, want %v %v", tc.since, ok, backlogOffsets(backlog), tc.wantRecovered, tc.wantBacklog)
			}
		})
	}
}

func TestAlignThenPublishAt(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	r := &recorder{}
	if err := h.Align("c", Position{0, "e1"}); err != nil {
		t.Fatal(err)
	}
	pos, _, _, _ := h.Subscribe(l, "c", r, nil)
	if pos != (Position{0, "e1"}) {
		t.Fatalf("position %+v", pos)
	}
	for off := uint64(1); off <= 3; off++ {
		if _, err := h.PublishAt("c", off, "e1", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(r.offsets(), seq(1, 3)) {
		t.Fatalf("delivered %v, want 1..3", r.offsets())
	}
	if err := h.Align("c", Position{0, "x"}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := h.Subscribe(l, "c", &recorder{}, &Position{3, "e1"}); ok {
		t.Fatal("recovered across an epoch change")
	}
	if err := h.Align("bad name", Position{0, "e1"}); !errors.Is(err, ErrInvalidChannel) {
		t.Fatalf("invalid channel: %v", err)
	}
}
