package pgstore

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadMigrationsOrdersByVersion(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/10_ten.sql":   {Data: []byte("10")},
		"migrations/003_c.sql":    {Data: []byte("3")},
		"migrations/9_nine.sql":   {Data: []byte("9")},
		"migrations/001_init.sql": {Data: []byte("1")},
	}
	ms, err := readMigrations(fsys)
	require.NoError(t, err)
	var got []int32
	for _, m := range ms {
		got = append(got, m.version)
	}
	assert.Equal(t, []int32{1, 3, 9, 10}, got, "numeric order, gaps allowed")

	fsys["migrations/0003_again.sql"] = &fstest.MapFile{Data: []byte("3")}
	_, err = readMigrations(fsys)
	require.ErrorContains(t, err, "one version")
	delete(fsys, "migrations/0003_again.sql")
	fsys["migrations/init.sql"] = &fstest.MapFile{Data: []byte("x")}
	_, err = readMigrations(fsys)
	require.ErrorContains(t, err, "bad migration name init.sql")
}

func TestMigrateFillsGaps(t *testing.T) {
	ctx := t.Context()
	s, pool := unmigratedStore(t)

	fsys := fstest.MapFS{
		"migrations/001_a.sql": {Data: []byte(`CREATE TABLE {{schema}}.a (x int)`)},
		"migrations/003_c.sql": {Data: []byte(`CREATE TABLE {{schema}}.c (x int)`)},
	}
	require.NoError(t, s.migrate(ctx, fsys))
	// 002 lands after 003 was applied (another branch merged later).
	fsys["migrations/002_b.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE {{schema}}.b (x int)`)}
	require.NoError(t, s.migrate(ctx, fsys))
	require.NoError(t, s.migrate(ctx, fsys), "nothing left to apply")
	var versions []int32
	rows, err := pool.Query(ctx, `SELECT version FROM `+s.schema+`.schema_migrations ORDER BY version`)
	require.NoError(t, err)
	for rows.Next() {
		var v int32
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []int32{1, 2, 3}, versions)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('a', 'b', 'c')`, s.schema).Scan(&n))
	assert.Equal(t, 3, n)
}
