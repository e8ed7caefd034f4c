using System.Net;
using System.Net.Sockets;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>
/// A loopback TCP forwarder to a server, for tests that need the server to vanish: <see cref="Stop"/> closes the
/// listener and every forwarded connection, so clients get resets and then refused connections, as when a database host
/// goes away, while the real server (shared by other tests) keeps running. <see cref="Sever"/> is a network blip instead:
/// the client's side of each connection breaks, while the server's side stays open, so its sessions live on.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _open = [];
    private readonly List<(TcpClient Client, TcpClient Upstream)> _pairs = [];
    private readonly HashSet<TcpClient> _kept = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly string _host;
    private readonly int _port;

    private TcpProxy(string host, int port)
    {
        (_host, _port) = (host, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    public static TcpProxy Start(string host, int port) => new(host, port);

    /// <summary>A proxy to the PostgreSQL server of <paramref name="connectionString"/>, and that connection string through it.</summary>
    public static (TcpProxy Proxy, string ConnectionString) ToPostgres(string connectionString)
    {
        var target = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var proxy = Start(target.Host!, target.Port);
        return (proxy, new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { Host = "127.0.0.1", Port = proxy.Port }.ConnectionString);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            var upstream = new TcpClient();
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
                await upstream.ConnectAsync(_host, _port, _stop.Token);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                upstream.Dispose();
                return;
            }
            lock (_open)
            {
                _open.Add(client);
                _open.Add(upstream);
                _pairs.Add((client, upstream));
            }
            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
        }
        finally
        {
            lock (_open)
            {
                if (!_kept.Contains(from))
                {
                    from.Close();
                }
                if (!_kept.Contains(to))
                {
                    to.Close();
                }
            }
        }
    }

    /// <summary>
    /// A network blip: every open connection breaks on the client's side, while the server's side stays open and silent
    /// (as when packets stop, and the server has not yet noticed). New connections are forwarded as before.
    /// </summary>
    public void Sever()
    {
        lock (_open)
        {
            foreach (var (client, upstream) in _pairs)
            {
                _kept.Add(upstream);
                client.Client.LingerState = new LingerOption(true, 0); // a reset, as a broken path gives
                client.Close();
            }
            _pairs.Clear();
        }
    }

    /// <summary>The server is gone: open connections are closed, new ones refused.</summary>
    public void Stop()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_open)
        {
            _open.ForEach(c => c.Close());
            _open.Clear();
            _pairs.Clear();
            _kept.Clear();
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
