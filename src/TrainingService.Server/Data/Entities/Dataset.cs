namespace TrainingService.Server.Data.Entities;

/// <summary>An uploaded, validated CSV: its schema and statistics here, its values in <see cref="DatasetChunk"/> rows.</summary>
public sealed class Dataset
{
    public Guid Id { get; set; }
    /// <summary>The owning tenant; every read and write is scoped to it.</summary>
    public required string Tenant { get; set; }
    public required string Name { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public long SizeBytes { get; set; }
    public long RowCount { get; set; }
    /// <summary>Hex SHA-256 of the uploaded bytes; unique per tenant (with the delimiter), so re-uploads return the existing dataset.</summary>
    public required string Sha256 { get; set; }
    public required string Delimiter { get; set; }
    public int ChunkRows { get; set; }
    /// <summary>JSON array of <c>Datasets.ColumnSchema</c>.</summary>
    public required string Columns { get; set; }
    /// <summary>JSON array of the first rows, each an array of cells as written (missing markers such as NA kept as they are).</summary>
    public required string Preview { get; set; }
}

/// <summary>One column's values for one range of rows, in a compact binary encoding (see <c>Datasets.ChunkCodec</c>).</summary>
public sealed class DatasetChunk
{
    public Guid DatasetId { get; set; }
    public int ColumnIndex { get; set; }
    public int ChunkIndex { get; set; }
    public int RowCount { get; set; }
    public short Encoding { get; set; }
    public required byte[] Data { get; set; }
}
