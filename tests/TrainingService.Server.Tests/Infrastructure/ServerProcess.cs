using System.Diagnostics;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>
/// The real executable in its own process (`dotnet TrainingService.Server.dll --role …`), configured through environment
/// variables like a deployment: for tests about several processes sharing one database.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(2) };
    }

    public int Port { get; }
    public HttpClient Client { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the process printed so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static ServerProcess Start(string role, string connectionString, IReadOnlyDictionary<string, string>? overrides = null)
    {
        int port = FreePort();
        var start = new ProcessStartInfo("dotnet", [ServerAssembly(), "--role", role])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(ServerAssembly())!,
        };
        foreach (var (key, value) in ServiceFixture.Settings(connectionString))
        {
            start.Environment[key.Replace(":", "__")] = value;
        }
        foreach (var (key, value) in overrides ?? new Dictionary<string, string>())
        {
            start.Environment[key.Replace(":", "__")] = value;
        }
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        start.Environment["Logging__Console__FormatterName"] = "simple";
        var process = new Process { StartInfo = start };
        var server = new ServerProcess(process, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Waits until /health/live answers (migrations done, host started).</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                Assert.Fail($"Server process exited with {_process.ExitCode}:\n{Output}");
            }
            try
            {
                if ((await Client.GetAsync("/health/live")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        Assert.Fail($"Server process not ready within {timeout}:\n{Output}");
    }

    /// <summary>A crash: the process is killed at once, mid-batch, with no chance to clean up.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static string ServerAssembly()
    {
        string configuration = typeof(ServerProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "TrainingService.sln")))
        {
            directory = directory.Parent;
        }
        if (directory is null)
        {
            throw new InvalidOperationException("TrainingService.sln not found above the test assembly.");
        }
        string path = Path.Combine(directory.FullName, "src", "TrainingService.Server", "bin", configuration, "net10.0", "TrainingService.Server.dll");
        return File.Exists(path) ? path : throw new InvalidOperationException($"Build the solution first: {path} is missing.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
