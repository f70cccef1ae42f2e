using System.Globalization;
using System.Text;
using LoyaltyGrains.Domain;

namespace LoyaltyGrains.Persistence;

/// <summary>
/// The ledger's entry kinds for SQL, rendered from the one C# source, <see cref="EntryKind"/>: the rows of
/// loyalty.entry_kinds and the body of loyalty.kind(name), which SQL uses instead of bare numbers
/// (<c>WHERE kind = loyalty.kind('Capture')</c>; immutable, so the planner folds it to the constant and partial indexes
/// still match). Migration 0010 holds this rendering; a kind added to the enum needs a new migration with
/// <see cref="Render"/>'s output (the test that compares the database with the enum fails until then and prints it).
/// </summary>
public static class EntryKindsSql
{
    /// <summary>Every kind, in numeric order, as stored in loyalty.ledger.kind.</summary>
    public static IReadOnlyList<(short Kind, string Name)> All { get; } =
        [.. Enum.GetValues<EntryKind>().Select(kind => ((short)kind, kind.ToString())).OrderBy(kind => kind.Item1)];

    /// <summary>The SQL that makes loyalty.entry_kinds and loyalty.kind(name) agree with <see cref="EntryKind"/>.</summary>
    public static string Render()
    {
        var sql = new StringBuilder();
        sql.Append("INSERT INTO loyalty.entry_kinds (kind, name) VALUES\n");
        sql.AppendJoin(",\n", All.Select(k => string.Create(CultureInfo.InvariantCulture, $"    ({k.Kind}, '{k.Name}')")));
        sql.Append("\nON CONFLICT (kind) DO UPDATE SET name = excluded.name;\n\n");
        sql.Append("""
            CREATE OR REPLACE FUNCTION loyalty.kind(p_name text) RETURNS smallint
            LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS
            $$
            BEGIN
                CASE p_name

            """);
        foreach (var (kind, name) in All) sql.Append(CultureInfo.InvariantCulture, $"        WHEN '{name}' THEN RETURN {kind};\n");
        sql.Append("""
                    ELSE RAISE EXCEPTION 'loyalty.kind: no entry kind is named %', p_name;
                END CASE;
            END
            $$;

            """);
        return sql.ToString();
    }
}
