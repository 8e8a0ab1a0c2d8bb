package auth

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func decodeClaims(t *testing.T, s string) claims {
	t.Helper()
	var c claims
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClaimMapping(t *testing.T) {
	keycloak := ClaimMapping{AgentClaim: "extension", RolesClaim: "realm_access.roles",
		RoleMap: map[string]string{"callcenter-agent": "agent", "callcenter-supervisor": "supervisor"}}
	table := ClaimMapping{UserClaim: "email", Users: map[string]string{"Alice@Example.com": "1001"}, RolesClaim: "groups"}
	bySub := ClaimMapping{UserClaim: "sub", Users: map[string]string{"AbC": "1001"}}
	for _, m := range []*ClaimMapping{&keycloak, &table, &bySub} {
		m.setDefaults()
	}
	for _, tc := range []struct {
		name    string
		m       ClaimMapping
		claims  string
		want    Identity
		wantErr string
	}{
		{
			name:   "agent claim as a number, nested roles mapped, other groups dropped",
			m:      keycloak,
			claims: `{"sub":"s1","extension":1001,"name":"Alice","realm_access":{"roles":["callcenter-supervisor","offline_access","callcenter-agent","callcenter-agent"]}}`,
			want:   Identity{AgentID: "1001", Name: "Alice", Roles: []string{"agent", "supervisor"}, Subject: "s1"},
		},
		{
			name:   "name falls back to preferred_username",
			m:      keycloak,
			claims: `{"sub":"s1","extension":"1001","preferred_username":"alice"}`,
			want:   Identity{AgentID: "1001", Name: "alice", Roles: []string{}, Subject: "s1"},
		},
		{
			name:   "table by email without case, roles as they are",
			m:      table,
			claims: `{"sub":"s2","email":"alice@example.COM","email_verified":true,"groups":"staff"}`,
			want:   Identity{AgentID: "1001", Name: "1001", Roles: []string{"staff"}, Subject: "s2"},
		},
		{
			name:    "an unverified email is not looked up",
			m:       table,
			claims:  `{"sub":"s2","email":"alice@example.com","email_verified":false}`,
			wantErr: `not an agent here: account "alice@example.com": it is not in the users table (by email)`,
		},
		{
			name:    "sub compares exactly",
			m:       bySub,
			claims:  `{"sub":"abc"}`,
			wantErr: `not an agent here: account "abc": it is not in the users table (by sub)`,
		},
		{
			name:   "sub found",
			m:      bySub,
			claims: `{"sub":"AbC"}`,
			want:   Identity{AgentID: "1001", Name: "1001", Subject: "AbC"},
		},
		{
			name:    "no agent claim",
			m:       keycloak,
			claims:  `{"sub":"s3","preferred_username":"bob"}`,
			wantErr: `not an agent here: account "bob": it has no extension claim`,
		},
		{
			name:    "no sub",
			m:       keycloak,
			claims:  `{"extension":"1001"}`,
			wantErr: `unauthenticated: the token has no sub`,
		},
	} {
		got, err := tc.m.identify(decodeClaims(t, tc.claims))
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.AgentID != tc.want.AgentID || got.Name != tc.want.Name || got.Subject != tc.want.Subject || !slices.Equal(got.Roles, tc.want.Roles) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestNotAgentError(t *testing.T) {
	m := ClaimMapping{AgentClaim: "extension"}
	m.setDefaults()
	_, err := m.identify(decodeClaims(t, `{"sub":"s","preferred_username":"bob"}`))
	var na *NotAgentError
	if !errors.Is(err, ErrNotAgent) || !errors.As(err, &na) {
		t.Fatalf("%v is not a NotAgentError", err)
	}
	if na.Account != "bob" || na.Reason != "it has no extension claim" {
		t.Errorf("%+v", na)
	}
}
