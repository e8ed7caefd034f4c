using Microsoft.Extensions.Options;
using TrainingService.Server.Configuration;

namespace TrainingService.Server.Datasets;

/// <summary>
/// Counts uploads in progress, per client (by remote address until keys exist) and in all, so that a handful of
/// clients cannot occupy every parser, spool byte and database connection; past either cap an upload is refused
/// with 429 before its body is read.
/// </summary>
public sealed class UploadGate(IOptions<DatasetOptions> options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _perClient = new(StringComparer.Ordinal);
    private int _total;

    /// <summary>A lease for one upload from <paramref name="client"/>, released by disposing it; null past a cap.</summary>
    public IDisposable? TryEnter(string client)
    {
        var settings = options.Value;
        lock (_lock)
        {
            int mine = _perClient.GetValueOrDefault(client);
            if (_total >= settings.MaxConcurrentUploads || mine >= settings.MaxConcurrentUploadsPerClient)
            {
                return null;
            }
            _perClient[client] = mine + 1;
            _total++;
        }
        return new Lease(this, client);
    }

    private void Leave(string client)
    {
        lock (_lock)
        {
            _total--;
            if (--_perClient[client] == 0)
            {
                _perClient.Remove(client);
            }
        }
    }

    private sealed class Lease(UploadGate gate, string client) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                gate.Leave(client);
            }
        }
    }
}
