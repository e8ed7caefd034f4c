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
        // Per tenant: the same bytes uploaded by another tenant are another dataset (and say nothing of the first). The same
        // bytes read with another delimiter are another dataset too.
        builder.HasIndex(d => new { d.Tenant, d.Sha256, d.Delimiter }).IsUnique();
        builder.HasIndex(d => new { d.Tenant, d.CreatedAt });
        builder.HasOne<Tenant>().WithMany().HasForeignKey(d => d.Tenant).OnDelete(DeleteBehavior.Restrict);
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
        builder.Property(j => j.Baseline).HasColumnType("jsonb");
        builder.Property(j => j.ComputeDevice).HasDefaultValue("any");
        builder.Property(j => j.Diagnoses).HasColumnType("jsonb");
        builder.HasOne<Dataset>().WithMany().HasForeignKey(j => j.DatasetId).OnDelete(DeleteBehavior.SetNull);
        builder.HasOne<Job>().WithMany().HasForeignKey(j => j.RetryOf).OnDelete(DeleteBehavior.SetNull);
        // Newest-first listings with a (created_at, id) cursor, optionally filtered by status or dataset.
        builder.HasIndex(j => new { j.Tenant, j.CreatedAt, j.Id }).IsDescending();
        builder.HasIndex(j => new { j.Status, j.CreatedAt });
        builder.HasIndex(j => new { j.Tenant, j.Status });
        builder.HasIndex(j => new { j.Tenant, j.StartedAt }); // fair scheduling: when each tenant last started a job
        builder.HasIndex(j => new { j.DatasetId, j.CreatedAt });
        builder.HasOne<Tenant>().WithMany().HasForeignKey(j => j.Tenant).OnDelete(DeleteBehavior.Restrict);
        builder.Property(j => j.SweepParameters).HasColumnType("jsonb");
        builder.HasOne<Sweep>().WithMany().HasForeignKey(j => j.SweepId).OnDelete(DeleteBehavior.SetNull);
        // A trial index exists once per sweep: a sweep resumed after a crash cannot create the same trial twice.
        builder.HasIndex(j => new { j.SweepId, j.SweepTrial }).IsUnique().HasFilter("sweep_id IS NOT NULL");
    }
}

internal sealed class SweepConfiguration : IEntityTypeConfiguration<Sweep>
{
    public void Configure(EntityTypeBuilder<Sweep> builder)
    {
        builder.ToTable("sweeps", t => t.HasCheckConstraint("ck_sweeps_status", "status IN ('running', 'completed', 'cancelled')"));
        builder.HasKey(s => s.Id);
        builder.Property(s => s.Status).HasMaxLength(16);
        builder.Property(s => s.StopReason).HasMaxLength(32);
        builder.Property(s => s.Spec).HasColumnType("jsonb");
        builder.HasIndex(s => new { s.Tenant, s.CreatedAt, s.Id }).IsDescending();
        builder.HasIndex(s => s.Status);
        builder.HasOne<Tenant>().WithMany().HasForeignKey(s => s.Tenant).OnDelete(DeleteBehavior.Restrict);
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
        builder.HasKey(r => new { r.Tenant, r.Key });
        builder.Property(r => r.Key).HasMaxLength(255);
        builder.HasOne<Job>().WithMany().HasForeignKey(r => r.JobId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class TenantConfiguration : IEntityTypeConfiguration<Tenant>
{
    public void Configure(EntityTypeBuilder<Tenant> builder)
    {
        builder.ToTable("tenants");
        builder.HasKey(t => t.Name);
        builder.Property(t => t.Name).HasMaxLength(64);
    }
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> builder)
    {
        builder.ToTable("api_keys", t => t.HasCheckConstraint("ck_api_keys_role", "role IN ('viewer', 'member', 'admin', 'owner')"));
        builder.HasKey(k => k.Id);
        builder.Property(k => k.Id).HasMaxLength(32);
        builder.Property(k => k.Role).HasMaxLength(16);
        builder.Property(k => k.Name).HasMaxLength(256);
        builder.HasIndex(k => new { k.Tenant, k.CreatedAt });
        builder.HasOne<Tenant>().WithMany().HasForeignKey(k => k.Tenant).OnDelete(DeleteBehavior.Restrict);
    }
}
