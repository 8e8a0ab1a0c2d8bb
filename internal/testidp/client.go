package testidp

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is op.Client for both kinds of client. Access tokens are JWTs,
// and profile and email claims go into the ID token even though an access
// token is issued too, as Keycloak and Entra ID do.
type client struct {
	id              string
	redirects       []string
	postLogout      []string
	responseTypes   []oidc.ResponseType
	grantTypes      []oidc.GrantType
	idTokenLifetime time.Duration
}

var _ op.Client = (*client)(nil)

func newWebClient(c WebClient) *client {
	lifetime := c.IDTokenLifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	return &client{
		id:              c.ID,
		redirects:       c.RedirectURIs,
		postLogout:      c.PostLogoutRedirectURIs,
		responseTypes:   []oidc.ResponseType{oidc.ResponseTypeCode},
		grantTypes:      []oidc.GrantType{oidc.GrantTypeCode},
		idTokenLifetime: lifetime,
	}
}

func newServiceClient(c ServiceClient) *client {
	return &client{
		id:              c.ID,
		grantTypes:      []oidc.GrantType{oidc.GrantTypeClientCredentials},
		idTokenLifetime: time.Hour,
	}
}

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string     { return c.postLogout }
func (c *client) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod          { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType   { return c.responseTypes }
func (c *client) GrantTypes() []oidc.GrantType         { return c.grantTypes }
func (c *client) LoginURL(requestID string) string     { return LoginURL(requestID) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTokenLifetime }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
