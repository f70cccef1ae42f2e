using System.Security.Cryptography;

namespace LoyaltyGrains.Gateway.Auth;

/// <summary>
/// The embedded default's signing key when none is configured: generated once, kept in a file only this user can read
/// (mode 0600) outside the repository, so the engine, the demo and the token command agree without any setup. Never
/// for a node reachable from other machines (the silo refuses to start so).
/// </summary>
public static class DevelopmentKey
{
    public const string FileVariable = "LOYALTY_AUTH_DEV_KEY_FILE";
    public const string FileKey = "Loyalty:Auth:DevelopmentKeyFile";

    /// <summary>$XDG_DATA_HOME (or ~/.local/share)/loyaltygrains/dev-signing-key; the temp folder when there is no home.</summary>
    public static string DefaultPath()
    {
        var data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        var folder = string.IsNullOrEmpty(data)
            ? Path.Combine(Path.GetTempPath(), $"loyaltygrains-{Environment.UserName}")
            : Path.Combine(data, "loyaltygrains");
        return Path.Combine(folder, "dev-signing-key");
    }

    /// <summary>Reads the key at <paramref name="path"/>, creating it (32 random bytes, base64, mode 0600) when missing.</summary>
    public static string LoadOrCreate(string path, out bool created)
    {
        created = false;
        if (File.Exists(path)) return Read(path);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(folder);
        else Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var temporary = path + "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.WriteLine(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        }
        try
        {
            // Atomic and never over an existing key: two processes starting together end up with the same one.
            File.Move(temporary, path, overwrite: false);
            created = true;
        }
        catch (IOException) when (File.Exists(path))
        {
            File.Delete(temporary);
        }
        return Read(path);
    }

    private static string Read(string path)
    {
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new InvalidOperationException($"{path}: the development signing key is readable by other users; chmod 600 it or delete it (a new one is generated)");
        }
        var key = File.ReadAllText(path).Trim();
        LoyaltyAuthOptions.ParseKeys(key);
        return key;
    }
}
