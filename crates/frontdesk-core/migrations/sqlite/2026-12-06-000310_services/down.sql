DROP TABLE session_services;
DROP TABLE user_services;
DROP TABLE services;
