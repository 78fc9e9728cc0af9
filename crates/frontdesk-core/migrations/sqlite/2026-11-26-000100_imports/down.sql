DROP TABLE import_invitations;
DROP TABLE imports;
