-- +goose Up

-- users are the platform's accounts. Email is unique regardless of case, so
-- "Ada@Example.com" and "ada@example.com" cannot both sign up.
CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL CHECK (email LIKE '%_@_%'),
    name       text        NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- student_profiles is a user's student record: at most one per user, and
-- student_id is the external identifier other systems know the student by.
CREATE TABLE student_profiles (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    student_id  text        NOT NULL CHECK (student_id <> ''),
    cohort      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT student_profiles_user_id_key UNIQUE (user_id),
    CONSTRAINT student_profiles_student_id_key UNIQUE (student_id)
);

-- performance_metrics are a student's measurements over time. Values are
-- finite: PostgreSQL would accept NaN and ±Infinity, which poison averages.
CREATE TABLE performance_metrics (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    student_profile_id bigint           NOT NULL REFERENCES student_profiles (id) ON DELETE CASCADE,
    name               text             NOT NULL CHECK (name <> ''),
    value              double precision NOT NULL
        CHECK (value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)),
    recorded_at        timestamptz      NOT NULL DEFAULT now()
);
-- Serves the student-with-metrics read and the time-window read: both look up
-- one profile's metrics in recorded_at order.
CREATE INDEX performance_metrics_profile_recorded_idx
    ON performance_metrics (student_profile_id, recorded_at, id);

-- +goose Down
DROP TABLE performance_metrics;
DROP TABLE student_profiles;
DROP TABLE users;
