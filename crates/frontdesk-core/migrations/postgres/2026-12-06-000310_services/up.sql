-- The host's services (its web app, its mobile API…), declared in the
-- builder and synced here at start; a sign-in belongs to the service whose
-- routes its session is used on (the activity middleware's service).
CREATE TABLE services (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Per user and service: the first and the latest sign-in.
CREATE TABLE user_services (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    first_login_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, service_id)
);
CREATE INDEX user_services_service ON user_services (service_id, user_id);

-- Which services each session (sign-in) was used on.
CREATE TABLE session_services (
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    service_id BIGINT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id, service_id)
);
