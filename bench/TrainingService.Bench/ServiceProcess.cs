using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace TrainingService.Bench;

/// <summary>The service's executable in its own process, configured by environment variables, as a deployment runs it.</summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServiceProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(30) };
    }

    public int Port { get; }
    public int Pid => _process.Id;
    public HttpClient Client { get; }

    public static async Task<ServiceProcess> StartAsync(string role, string connectionString, IReadOnlyDictionary<string, string>? settings = null)
    {
        string dll = TrainBenchmark.FindUp(Path.Combine("src", "TrainingService.Server", "bin", "Release", "net10.0", "TrainingService.Server.dll"))
            ?? throw new InvalidOperationException("Build the solution in Release first (scripts/bench.sh does).");
        int port;
        using (var listener = new TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }
        var start = new ProcessStartInfo("dotnet", [dll, "--role", role])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.Environment["ConnectionStrings__Postgres"] = connectionString;
        start.Environment["Urls"] = $"http://127.0.0.1:{port}";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[key.Replace(":", "__")] = value;
        }
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"[{role}] {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var service = new ServiceProcess(process, port);
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if ((await service.Client.GetAsync("/health/live")).IsSuccessStatusCode)
                {
                    return service;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        throw new InvalidOperationException($"The {role} process did not start.");
    }

    /// <summary>Resident memory now (VmRSS) in MiB, from /proc.</summary>
    public double ResidentMiB() => ProcStatus("VmRSS:");

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

    public static string Postgres() => Environment.GetEnvironmentVariable("TRAININGSERVICE_BENCH_POSTGRES")
        ?? throw new InvalidOperationException("Set TRAININGSERVICE_BENCH_POSTGRES (scripts/bench.sh starts a PostgreSQL and sets it).");
}
