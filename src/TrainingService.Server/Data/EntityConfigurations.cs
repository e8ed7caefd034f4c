using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using TrainingService.Server.Data.Entities;

namespace TrainingService.Server.Data;

internal sealed class DatasetConfiguration : IEntityTypeConfiguration<Dataset>
{
    public void Configure(EntityTypeBuilder<Dataset> builder)
    {
        builder.ToTable("datasets");
        builder.HasKey(d => d.Id);
        builder.Property(d => d.Sha256).HasMaxLength(64);
        builder.HasIndex(d => new { d.Sha256, d.Delimiter }).IsUnique(); // the same bytes read with another delimiter are another dataset
        builder.HasIndex(d => d.CreatedAt);
        builder.Property(d => d.Columns).HasColumnType("jsonb");
        builder.Property(d => d.Preview).HasColumnType("jsonb");
    }
}

internal sealed class DatasetChunkConfiguration : IEntityTypeConfiguration<DatasetChunk>
{
    public void Configure(EntityTypeBuilder<DatasetChunk> builder)
    {
        builder.ToTable("dataset_chunks");
        builder.HasKey(c => new { c.DatasetId, c.ColumnIndex, c.ChunkIndex });
        builder.HasOne<Dataset>().WithMany().HasForeignKey(c => c.DatasetId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class JobConfiguration : IEntityTypeConfiguration<Job>
{
    public void Configure(EntityTypeBuilder<Job> builder)
    {
        builder.ToTable("jobs", t => t.HasCheckConstraint("ck_jobs_status",
            "status IN ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')"));
        builder.HasKey(j => j.Id);
        builder.Property(j => j.Status).HasMaxLength(16);
        builder.Property(j => j.Spec).HasColumnType("jsonb");
        builder.Property(j => j.Transitions).HasColumnType("jsonb");
        builder.Property(j => j.DataSummary).HasColumnType("jsonb");
        builder.HasOne<Dataset>().WithMany().HasForeignKey(j => j.DatasetId).OnDelete(DeleteBehavior.SetNull);
        builder.HasOne<Job>().WithMany().HasForeignKey(j => j.RetryOf).OnDelete(DeleteBehavior.SetNull);
        // Newest-first listings with a (created_at, id) cursor, optionally filtered by status or dataset.
        builder.HasIndex(j => new { j.CreatedAt, j.Id }).IsDescending();
        builder.HasIndex(j => new { j.Status, j.CreatedAt });
        builder.HasIndex(j => new { j.DatasetId, j.CreatedAt });
    }
}

internal sealed class JobEpochConfiguration : IEntityTypeConfiguration<JobEpoch>
{
    public void Configure(EntityTypeBuilder<JobEpoch> builder)
    {
        builder.ToTable("job_epochs");
        builder.HasKey(e => new { e.JobId, e.Epoch });
        builder.Property(e => e.Metrics).HasColumnType("jsonb");
        builder.HasOne<Job>().WithMany().HasForeignKey(e => e.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class JobCheckpointConfiguration : IEntityTypeConfiguration<JobCheckpoint>
{
    public void Configure(EntityTypeBuilder<JobCheckpoint> builder)
    {
        builder.ToTable("job_checkpoints");
        builder.HasKey(c => c.JobId);
        builder.HasOne<Job>().WithOne().HasForeignKey<JobCheckpoint>(c => c.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class JobModelConfiguration : IEntityTypeConfiguration<JobModel>
{
    public void Configure(EntityTypeBuilder<JobModel> builder)
    {
        builder.ToTable("job_models");
        builder.HasKey(m => m.JobId);
        builder.Property(m => m.Model).HasColumnType("jsonb");
        builder.HasOne<Job>().WithOne().HasForeignKey<JobModel>(m => m.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class IdempotencyRecordConfiguration : IEntityTypeConfiguration<IdempotencyRecord>
{
    public void Configure(EntityTypeBuilder<IdempotencyRecord> builder)
    {
        builder.ToTable("idempotency_keys");
        builder.HasKey(r => r.Key);
        builder.Property(r => r.Key).HasMaxLength(255);
        builder.HasOne<Job>().WithMany().HasForeignKey(r => r.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}
