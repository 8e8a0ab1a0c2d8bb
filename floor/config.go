package floor

import (
	"errors"
	"fmt"
	"time"
)

// Config is the floor view's configuration, the `floor:` block.
type Config struct {
	// ServiceLevelSeconds is the service level's threshold: a call
	// answered within this many seconds of its first ring counts as
	// answered in time. Default 20.
	ServiceLevelSeconds int `yaml:"service_level_seconds"`
	// TimeZone names the IANA zone whose midnight starts "today" for the
	// counts of the day (Europe/Berlin); empty: the daemon's local zone.
	// Daemons that share Redis must name the same one.
	TimeZone string `yaml:"time_zone"`
}

// DefaultServiceLevelSeconds is Config.ServiceLevelSeconds' default: the
// common "80% of calls answered within 20 seconds" target.
const DefaultServiceLevelSeconds = 20

// MaxServiceLevelSeconds bounds Config.ServiceLevelSeconds.
const MaxServiceLevelSeconds = 3600

// ApplyDefaults fills what c leaves out.
func (c *Config) ApplyDefaults() {
	if c.ServiceLevelSeconds == 0 {
		c.ServiceLevelSeconds = DefaultServiceLevelSeconds
	}
}

// OptionError is one problem of a Config: Option is the key under
// `floor:`, for the configuration loader to find its line.
type OptionError struct {
	Option string
	Msg    string
	Fix    string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

// Validate reports every problem of c (after ApplyDefaults), each an
// *OptionError, joined; nil when there is none.
func (c Config) Validate() error {
	var errs []error
	if c.ServiceLevelSeconds < 1 || c.ServiceLevelSeconds > MaxServiceLevelSeconds {
		errs = append(errs, &OptionError{Option: "service_level_seconds",
			Msg: fmt.Sprintf("%d is outside 1..%d seconds", c.ServiceLevelSeconds, MaxServiceLevelSeconds),
			Fix: fmt.Sprintf("e.g. service_level_seconds: %d (answered within 20 seconds of the first ring)", DefaultServiceLevelSeconds)})
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, &OptionError{Option: "time_zone", Msg: err.Error(),
			Fix: "an IANA zone name such as Europe/Berlin or America/New_York; leave it out for the daemon's local zone"})
	}
	return errors.Join(errs...)
}

// Location is the zone of TimeZone.
func (c Config) Location() (*time.Location, error) {
	if c.TimeZone == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("%q is not a time zone", c.TimeZone)
	}
	return loc, nil
}

// ServiceLevel is the threshold as a duration.
func (c Config) ServiceLevel() time.Duration {
	return time.Duration(c.ServiceLevelSeconds) * time.Second
}
