package screenpop

import "testing"

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"+4930123456":     "+*******456",
		"+48 601-234-567": "+** ***-***-567",
		"1001":            "*001",
		"12":              "12",
		"":                "",
		"anonymous":       "anonymous",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}
