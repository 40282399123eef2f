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

-- CreateUsers creates several accounts in one round trip (a class roster
-- imported at once). Like a batch outside a transaction it is all or
-- nothing: an email already taken fails its own callback with a
-- *repo.ConflictError, the accounts after it report repo.ErrBatchAborted,
-- and none of them is created.
-- name: CreateUsers :batchone
INSERT INTO users (email, name)
VALUES (@email, @name)
RETURNING *;
