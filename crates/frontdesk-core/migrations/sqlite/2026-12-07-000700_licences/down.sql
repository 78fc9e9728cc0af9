DROP TABLE group_licences;
DROP TABLE user_licences;
DROP TABLE licence_types;
