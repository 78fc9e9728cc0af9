DROP TABLE sso_exemptions;
DROP TABLE sso_states;
DROP TABLE linked_identities;
DROP TABLE identity_provider_domains;
DROP TABLE identity_providers;
