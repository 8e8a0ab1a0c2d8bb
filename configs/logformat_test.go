package configs

import "testing"

// log_format is text unless the file says json; anything else is refused
// at its line and column, with the values it may take.
func TestLogFormat(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"demo"}})
	const telephony = "telephony: [{name: demo, type: demo}]\n"
	for _, tc := range []struct {
		file, want string
	}{
		{telephony, LogFormatText},
		{"log_format: text\n" + telephony, LogFormatText},
		{"log_format: json\n" + telephony, LogFormatJSON},
	} {
		cfg, err := Parse("x.yaml", []byte(tc.file), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.file, err)
		}
		if cfg.LogFormat != tc.want {
			t.Errorf("%q: log_format %q, want %q", tc.file, cfg.LogFormat, tc.want)
		}
	}

	_, err := Parse("x.yaml", []byte("log_level: info\nlog_format: logfmt\n"+telephony), nil)
	const want = `x.yaml:2:1: log_format: "logfmt" is not a log format (fix: use text (key=value lines) or json (one object a line, for a log pipeline))`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}
