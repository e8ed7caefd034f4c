using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace TrainingService.ProcessHarness;

/// <summary>
/// The service's executable in its own process (<c>dotnet TrainingService.Server.dll --role …</c>) on a free loopback
/// port, configured through environment variables as a deployment runs it: for benchmarks measured as clients see the
/// service, and for tests about several processes sharing one database.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _role;
    private readonly bool _echoStandardError;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errorOutput = new();
    private bool _disposed;

    private ServiceProcess(Process process, string role, int port, ServiceProcessOptions options)
    {
        _process = process;
        _role = role;
        _echoStandardError = options.EchoStandardError;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = options.ClientTimeout };
        if (options.Settings.TryGetValue("Auth:OwnerKey", out string? key))
        {
            Client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            ApiKey = key;
        }
    }

    /// <summary>The owner key the process was configured with (Auth:OwnerKey), which <see cref="Client"/> sends; null when none.</summary>
    public string? ApiKey { get; }

    public int Port { get; }
    public int Pid => _process.Id;
    public HttpClient Client { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the process printed so far, standard output and standard error interleaved.</summary>
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

    /// <summary>What the process printed on standard error alone so far.</summary>
    public string ErrorOutput
    {
        get
        {
            lock (_output)
            {
                return _errorOutput.ToString();
            }
        }
    }

    /// <summary>Starts the process and returns at once; <see cref="WaitReadyAsync"/> waits until it serves.</summary>
    // No inlining: the default configuration is the calling assembly's.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static ServiceProcess Start(string role, string connectionString, ServiceProcessOptions? options = null)
    {
        options ??= new ServiceProcessOptions();
        string dll = ServerAssembly(options.Configuration ?? ConfigurationOf(Assembly.GetCallingAssembly()));
        int port = FreePort();
        var start = new ProcessStartInfo("dotnet", [dll, "--role", role, .. options.Arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.Environment["ConnectionStrings__Postgres"] = connectionString;
        foreach (var (key, value) in options.Settings)
        {
            start.Environment[key.Replace(":", "__")] = value;
        }
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        var process = new Process { StartInfo = start };
        var service = new ServiceProcess(process, role, port, options);
        process.OutputDataReceived += (_, e) => service.Append(e.Data, standardError: false);
        process.ErrorDataReceived += (_, e) => service.Append(e.Data, standardError: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
    }

    /// <summary>Starts the process and waits until it serves; on failure the process is killed and the error thrown.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Task<ServiceProcess> StartReadyAsync(string role, string connectionString, ServiceProcessOptions options, TimeSpan timeout)
    {
        // Not async: the calling assembly must be read before the first await.
        var service = Start(role, connectionString,
            options with { Configuration = options.Configuration ?? ConfigurationOf(Assembly.GetCallingAssembly()) });
        return ReadyAsync(service, timeout);
    }

    private static async Task<ServiceProcess> ReadyAsync(ServiceProcess service, TimeSpan timeout)
    {
        try
        {
            await service.WaitReadyAsync(timeout);
            return service;
        }
        catch
        {
            await service.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits until /health/live answers (migrations done, host started). Throws <see cref="InvalidOperationException"/>
    /// with the exit code and <see cref="Output"/> when the process exits first or the timeout passes.
    /// </summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(); // the last lines of output
                throw new InvalidOperationException($"The {_role} process exited with {_process.ExitCode} before it was ready:\n{Output}");
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
        string state = _process.HasExited ? $"exited with {_process.ExitCode}" : "still running";
        throw new InvalidOperationException($"The {_role} process was not ready within {timeout} ({state}):\n{Output}");
    }

    /// <summary>A crash: the process is killed at once, mid-batch, with no chance to clean up.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>Waits for the process to exit by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    /// <summary>Resident memory now (VmRSS) in MiB, from /proc.</summary>
    public double ResidentMiB() => ProcStatus("VmRSS:");

    /// <summary>
    /// Resets the peak and samples resident memory every 20 ms until the returned watch is stopped; its peak is the larger
    /// of the samples and VmHWM (which a kernel that trims pages can under-report).
    /// </summary>
    public PeakWatch WatchPeak()
    {
        ResetPeak();
        return new PeakWatch(this);
    }

    /// <summary>A running peak measurement; see <see cref="WatchPeak"/>.</summary>
    public sealed class PeakWatch
    {
        private readonly ServiceProcess _process;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _sampler;
        private double _sampled;

        internal PeakWatch(ServiceProcess process)
        {
            _process = process;
            _sampler = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    _sampled = Math.Max(_sampled, process.ResidentMiB());
                    await Task.Delay(20);
                }
            });
        }

        /// <summary>Stops sampling; the peak in MiB.</summary>
        public async Task<double> StopAsync()
        {
            await _stop.CancelAsync();
            await _sampler;
            _stop.Dispose();
            return Math.Max(_sampled, _process.PeakMiB());
        }
    }

    /// <summary>Peak resident memory (VmHWM) in MiB since start or since <see cref="ResetPeak"/>.</summary>
    public double PeakMiB() => ProcStatus("VmHWM:");

    /// <summary>CPU seconds (user + system) the process has used, from /proc/PID/stat.</summary>
    public double CpuSeconds()
    {
        var fields = File.ReadAllText($"/proc/{Pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>Resets VmHWM (Linux: writing 5 to /proc/PID/clear_refs).</summary>
    public void ResetPeak() => File.WriteAllText($"/proc/{Pid}/clear_refs", "5");

    /// <summary>Kills the process (and its children) if it still runs; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void Append(string? line, bool standardError)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
            if (standardError)
            {
                _errorOutput.AppendLine(line);
            }
        }
        if (standardError && _echoStandardError)
        {
            Console.Error.WriteLine($"[{_role}] {line}");
        }
    }

    private double ProcStatus(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return double.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024;
            }
        }
        return double.NaN;
    }

    private static string ConfigurationOf(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>The checkout's root: the folder above this assembly that holds TrainingService.sln.</summary>
    public static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "TrainingService.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException($"TrainingService.sln not found above {AppContext.BaseDirectory}.");
    }

    private static string ServerAssembly(string configuration)
    {
        string path = Path.Combine(RepositoryRoot(), "src", "TrainingService.Server", "bin", configuration, "net10.0", "TrainingService.Server.dll");
        return File.Exists(path) ? path : throw new InvalidOperationException($"Build the solution in {configuration} first: {path} is missing.");
    }

    /// <summary>A TCP port free on the loopback interface at the moment of asking.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
