package aggregator

import (
	"reflect"
	"testing"
	"time"
)

// TestDecodedMemo: a shared cache's value read again with the same bytes
// is not decoded again (the very same records come back); a value that
// changed is decoded afresh; a forgotten key and a value that does not
// decode are never answered from the memo.
func TestDecodedMemo(t *testing.T) {
	var d decodedMemo
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	v1, _ := encodeEntry(at, []Record{{"balance": "10.00"}})
	v2, _ := encodeEntry(at.Add(time.Minute), []Record{{"balance": "12.50"}})
	same := func(a, b cacheEntry) bool {
		return reflect.ValueOf(a.Records[0]).UnsafePointer() == reflect.ValueOf(b.Records[0]).UnsafePointer()
	}

	first, err := d.decode("k", v1)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := d.decode("k", append([]byte(nil), v1...)) // equal bytes, another slice
	if !same(first, again) {
		t.Error("the same bytes were decoded again")
	}
	other, _ := d.decode("other", v1)
	if same(first, other) {
		t.Error("another key's value came from the memo")
	}
	changed, err := d.decode("k", v2)
	if err != nil || same(first, changed) || changed.Records[0]["balance"] != "12.50" || !changed.FetchedAt.Equal(at.Add(time.Minute)) {
		t.Errorf("a changed value: %+v, %v", changed, err)
	}
	d.forget("k")
	if back, _ := d.decode("k", v2); same(changed, back) {
		t.Error("a forgotten key was answered from the memo")
	}
	if _, err := d.decode("k", []byte(`{"fetched_at":"x","records":[`)); err == nil {
		t.Error("a value that does not decode gave no error")
	}
	if _, err := d.decode("k", v2); err != nil {
		t.Errorf("after a bad value: %v", err)
	}
	for i := range maxDecodedMemo + 10 {
		d.decode(string(rune('a'+i%26))+time.Duration(i).String(), v1)
	}
	if n := len(d.m); n > maxDecodedMemo {
		t.Errorf("%d values remembered, bound %d", n, maxDecodedMemo)
	}
}
