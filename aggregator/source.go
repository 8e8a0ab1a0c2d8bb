package aggregator

import (
	"context"
	"errors"
)

// Source is what the aggregator needs from a company system: given who is
// calling, return what that system knows, or an error. Implementations live
// in adapters/<kind>; they must honour ctx's deadline, must be safe for
// concurrent use, and return (nil, nil) or an empty slice when they know
// nothing of the caller.
type Source interface {
	Fetch(ctx context.Context, key Key) ([]Record, error)
}

// Record is one row a source returned: column or JSON field name -> value.
// Values are what encoding/json or the database driver produced (string,
// float64, int64, bool, time.Time, nil, ...).
type Record = map[string]any

// Key is what a source may look a caller up by. Sources name the parameter
// they need (":phone", ":customer_id", ...) and get it through Param.
type Key struct {
	// Phone is the caller's number in E.164 ("+4930123456").
	Phone string
	// National is the national significant number ("30123456"), for systems
	// that store numbers without the country code.
	National string
	// Region is the ISO 3166 region of the number ("DE"), when known.
	Region string
	// CustomerID is the resolved customer, empty before resolution or when
	// the caller is unknown.
	CustomerID string
}

// Param returns the value of a named lookup parameter and whether the key
// has one. Names: phone, national, region, customer_id.
func (k Key) Param(name string) (string, bool) {
	var v string
	switch name {
	case "phone":
		v = k.Phone
	case "national":
		v = k.National
	case "region":
		v = k.Region
	case "customer_id":
		v = k.CustomerID
	default:
		return "", false
	}
	return v, v != ""
}

// ParamNames lists the parameter names Param knows, for configuration checks.
var ParamNames = []string{"phone", "national", "region", "customer_id"}

// ErrUnknownParam is returned by sources configured with a parameter that
// Key does not know.
var ErrUnknownParam = errors.New("unknown lookup parameter")
