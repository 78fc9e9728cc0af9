DROP TABLE invitation_groups;
