package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestValidateID(t *testing.T) {
	for id, ok := range map[string]bool{
		"abc": true, "a-b_c.d+e": true, "6006de83-bbe6-4be1-90cb-cd890979ff9e": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "../x": false, "a\nb": false,
	} {
		if err := ValidateID(id); (err == nil) != ok {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "root")}
	l, err := s.Create("c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("c1"); !errors.Is(err, ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}
	// Not saved yet: Lock and Load say it doesn't exist.
	if _, err := s.Load("c1"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Load before Save: %v", err)
	}
	if err := s.Save(&State{ID: "c1", Bundle: "/b", Pid: 42}); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	st, err := s.Load("c1")
	if err != nil || st.Pid != 42 || st.Bundle != "/b" {
		t.Fatalf("Load: %+v %v", st, err)
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Errorf("List: %v %v", ids, err)
	}
	l2, err := s.Lock("c1")
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
	if err := s.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir("c1")); !os.IsNotExist(err) {
		t.Errorf("dir remains after Remove")
	}
	if _, err := s.Lock("c1"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Lock after Remove: %v", err)
	}
}

func TestLockSerialises(t *testing.T) {
	s := Store{Root: t.TempDir()}
	l, err := s.Create("c")
	if err != nil {
		t.Fatal(err)
	}
	s.Save(&State{ID: "c"})
	got := make(chan struct{})
	go func() {
		l2, err := s.Lock("c")
		if err == nil {
			l2.Unlock()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second lock taken while the first is held")
	default:
	}
	l.Unlock()
	<-got
}
