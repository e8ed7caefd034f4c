using System.Net;
using System.Net.Sockets;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>
/// A loopback TCP forwarder to a server, for tests that need the server to vanish: <see cref="Stop"/> closes the
/// listener and every forwarded connection, so clients get resets and then refused connections, as when a database host
/// goes away, while the real server (shared by other tests) keeps running.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> _open = [];
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
            }
            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to)
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
            from.Close();
            to.Close();
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
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
