-- CreateUser creates an account. Emails are unique regardless of case.
-- name: CreateUser :one
INSERT INTO users (email, name)
VALUES (@email, @name)
RETURNING *;

-- GetUser returns one user by id.
-- name: GetUser :one
SELECT * FROM users
WHERE id = @id;

-- GetUserByEmail returns the user with this email, compared regardless of case.
-- name: GetUserByEmail :one
SELECT * FROM users
WHERE lower(email) = lower(@email);
