//! Diesel table definitions shared by both backends. Kept by hand in step with
//! `migrations/{sqlite,postgres}`; the FTS5 table of the SQLite search index is
//! reached only through `db::search_predicate`.

// The table definitions mirror the migrations; the README's data model documents the columns.
#![allow(missing_docs)]

diesel::table! {
    organizations (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        allowed_email_domains -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        require_mfa -> Bool,
        scim_delete -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        email_verified -> Bool,
        first_name -> Text,
        last_name -> Text,
        display_name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        local_login_enabled -> Bool,
        staff_role -> Nullable<Text>,
        status -> Text,
        suspended_reason -> Nullable<Text>,
        suspended_at -> Nullable<Timestamp>,
        profile -> Text,
        search_text -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        last_active_at -> Nullable<Timestamp>,
        suspended_until -> Nullable<Timestamp>,
        activated_at -> Nullable<Timestamp>,
        terms_version -> Nullable<Text>,
        terms_accepted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    email_verifications (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signup_requests (id) {
        id -> BigInt,
        email -> Text,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    memberships (user_id, organization_id) {
        user_id -> BigInt,
        organization_id -> BigInt,
        role -> Text,
        created_at -> Timestamp,
        scim_user_name -> Nullable<Text>,
        external_id -> Nullable<Text>,
        scim_emails -> Nullable<Text>,
        scim_active -> Nullable<Bool>,
    }
}

diesel::table! {
    tags (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_tags (user_id, tag_id) {
        user_id -> BigInt,
        tag_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invitations (id) {
        id -> BigInt,
        organization_id -> BigInt,
        email -> Text,
        role -> Text,
        message -> Nullable<Text>,
        token_hash -> Text,
        status -> Text,
        expires_at -> Timestamp,
        invited_by -> Nullable<BigInt>,
        send_count -> Integer,
        last_sent_at -> Nullable<Timestamp>,
        accepted_user_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
    }
}

diesel::table! {
    invitation_groups (invitation_id, group_id) {
        invitation_id -> BigInt,
        group_id -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
        last_active_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    password_resets (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        email -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        success -> Bool,
        reason -> Text,
        created_at -> Timestamp,
        method -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        organization_id -> Nullable<BigInt>,
        details -> Text,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Nullable<Text>,
        invitation_id -> Nullable<BigInt>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> BigInt,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        organization_id -> Nullable<BigInt>,
        role -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    imports (id) {
        id -> BigInt,
        actor -> Text,
        actor_user_id -> Nullable<BigInt>,
        organization_id -> Nullable<BigInt>,
        file_name -> Text,
        mode -> Text,
        options -> Text,
        status -> Text,
        background -> Bool,
        checking -> Bool,
        total_rows -> BigInt,
        rows_done -> BigInt,
        created -> BigInt,
        updated -> BigInt,
        skipped -> BigInt,
        rejected -> BigInt,
        applied -> Bool,
        report -> Nullable<Text>,
        error -> Nullable<Text>,
        upload_key -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    import_invitations (invitation_id) {
        invitation_id -> BigInt,
    }
}

diesel::table! {
    mfa_factors (id) {
        id -> BigInt,
        user_id -> BigInt,
        kind -> Text,
        name -> Text,
        secret -> Nullable<Text>,
        last_step -> Nullable<BigInt>,
        confirmed_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        credential_id -> Nullable<Text>,
        user_handle -> Nullable<Text>,
        credential -> Nullable<Text>,
    }
}

diesel::table! {
    passkey_ceremonies (id) {
        id -> BigInt,
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mfa_recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mfa_challenges (id) {
        id -> BigInt,
        user_id -> BigInt,
        token_hash -> Text,
        failures -> Integer,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    activity_events (id) {
        id -> BigInt,
        user_id -> BigInt,
        at -> Timestamp,
        kind -> Text,
        service -> Nullable<Text>,
        route -> Nullable<Text>,
        method -> Nullable<Text>,
        status -> Nullable<Integer>,
        details -> Text,
        ip -> Nullable<Text>,
    }
}

diesel::table! {
    services (id) {
        id -> BigInt,
        slug -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_services (user_id, service_id) {
        user_id -> BigInt,
        service_id -> BigInt,
        first_login_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    session_services (session_id, service_id) {
        session_id -> BigInt,
        service_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    groups (id) {
        id -> BigInt,
        organization_id -> BigInt,
        name -> Text,
        description -> Text,
        role -> Nullable<Text>,
        external_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> BigInt,
        user_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    scim_tokens (id) {
        id -> BigInt,
        organization_id -> BigInt,
        name -> Text,
        prefix -> Text,
        token_hash -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    scim_requests (id) {
        id -> BigInt,
        organization_id -> BigInt,
        token_id -> Nullable<BigInt>,
        method -> Text,
        path -> Text,
        status -> Integer,
        error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    identity_providers (id) {
        id -> BigInt,
        organization_id -> BigInt,
        provider_key -> Text,
        issuer -> Text,
        client_id -> Text,
        client_secret_sealed -> Text,
        default_role -> Text,
        require_sso -> Bool,
        trust_idp_mfa -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    identity_provider_domains (domain) {
        domain -> Text,
        identity_provider_id -> BigInt,
    }
}

diesel::table! {
    linked_identities (id) {
        id -> BigInt,
        user_id -> BigInt,
        provider -> Text,
        provider_user_id -> Text,
        email -> Nullable<Text>,
        linked_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sso_states (id) {
        id -> BigInt,
        state_hash -> Text,
        provider -> Text,
        pkce_verifier -> Text,
        nonce -> Text,
        next -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        link_user_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    sso_exemptions (user_id) {
        user_id -> BigInt,
        granted_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> organizations (organization_id));
diesel::joinable!(user_tags -> users (user_id));
diesel::joinable!(user_tags -> tags (tag_id));
diesel::joinable!(invitations -> organizations (organization_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(api_keys -> organizations (organization_id));
diesel::joinable!(mfa_factors -> users (user_id));
diesel::joinable!(activity_events -> users (user_id));
diesel::joinable!(user_services -> services (service_id));
diesel::joinable!(user_services -> users (user_id));
diesel::joinable!(session_services -> services (service_id));
diesel::table! {
    licence_types (key) {
        key -> Text,
        name -> Text,
        seats -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    user_licences (organization_id, licence, user_id) {
        organization_id -> BigInt,
        user_id -> BigInt,
        licence -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    group_licences (group_id, licence) {
        group_id -> BigInt,
        licence -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(groups -> organizations (organization_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(scim_tokens -> organizations (organization_id));
diesel::joinable!(user_licences -> users (user_id));
diesel::joinable!(user_licences -> organizations (organization_id));
diesel::joinable!(group_licences -> groups (group_id));

diesel::joinable!(identity_providers -> organizations (organization_id));
diesel::joinable!(identity_provider_domains -> identity_providers (identity_provider_id));
diesel::joinable!(linked_identities -> users (user_id));
diesel::joinable!(invitation_groups -> invitations (invitation_id));
diesel::joinable!(invitation_groups -> groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(
    invitation_groups,
    identity_providers,
    identity_provider_domains,
    linked_identities,
    sso_states,
    sso_exemptions,
    organizations,
    users,
    memberships,
    tags,
    user_tags,
    invitations,
    sessions,
    password_resets,
    login_attempts,
    audit_events,
    outbox,
    api_keys,
    imports,
    import_invitations,
    mfa_factors,
    mfa_recovery_codes,
    mfa_challenges,
    passkey_ceremonies,
    email_verifications,
    signup_requests,
    activity_events,
    services,
    user_services,
    session_services,
    groups,
    group_members,
    scim_tokens,
    scim_requests,
    licence_types,
    user_licences,
    group_licences,
);

/// PostgreSQL only: the copy of each user's sign-up time that `memberships`
/// and `user_tags` carry there (migration `set_sort_keys`; SQLite has no such
/// column). Filled by triggers from `users`; named here only for the writers
/// that already know the value and give it, so the triggers are not called.
#[cfg(feature = "postgres")]
pub mod pg_sort_keys {
    diesel::table! {
        memberships (user_id, organization_id) {
            user_id -> BigInt,
            organization_id -> BigInt,
            role -> Text,
            created_at -> Timestamp,
            user_created_at -> Timestamp,
        }
    }

    diesel::table! {
        user_tags (user_id, tag_id) {
            user_id -> BigInt,
            tag_id -> BigInt,
            created_at -> Timestamp,
            user_created_at -> Timestamp,
        }
    }
}
