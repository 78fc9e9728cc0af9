-- Single sign-on. An organization's OpenID Connect identity provider (at
-- most one); its client secret is sealed with a key derived from the host's
-- secret_key, never stored in clear. `provider_key` names the provider in
-- linked_identities and in the sign-in's state (`org:<slug at creation>`).
CREATE TABLE identity_providers (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    organization_id BIGINT NOT NULL UNIQUE REFERENCES organizations (id) ON DELETE CASCADE,
    provider_key TEXT NOT NULL UNIQUE,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed TEXT NOT NULL,
    default_role TEXT NOT NULL DEFAULT 'member' CHECK (default_role IN ('admin', 'member')),
    require_sso BOOLEAN NOT NULL DEFAULT FALSE,
    -- The IdP's `amr` claim naming a second factor stands for ours.
    trust_idp_mfa BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The email domains an identity provider owns (home-realm discovery, and
-- just-in-time accounts); a domain belongs to one provider at most.
CREATE TABLE identity_provider_domains (
    domain TEXT PRIMARY KEY NOT NULL,
    identity_provider_id BIGINT NOT NULL REFERENCES identity_providers (id) ON DELETE CASCADE
);
CREATE INDEX identity_provider_domains_provider ON identity_provider_domains (identity_provider_id);

-- A user's accounts at identity providers: `provider` is the provider's
-- key, `provider_user_id` its `sub`.
CREATE TABLE linked_identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    email TEXT,
    linked_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    UNIQUE (provider, provider_user_id)
);
CREATE INDEX linked_identities_user ON linked_identities (user_id, id);

-- A sign-in on its way through an identity provider: the SHA-256 of its
-- `state`, the PKCE verifier and the nonce, where to go after. Used once.
CREATE TABLE sso_states (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    state_hash TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    next TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sso_states_expires ON sso_states (expires_at);

-- The escape hatch of "require SSO": users an admin still lets sign in with
-- a password (for example while the identity provider is down).
CREATE TABLE sso_exemptions (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
