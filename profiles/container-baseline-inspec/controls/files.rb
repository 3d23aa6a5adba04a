# Files: the same rules as container-baseline's files.yml, in InSpec syntax.

control 'cb-files-01' do
  impact 0.7
  title '/etc/passwd is owned by root and not writable by others'
  desc 'Whoever can write passwd can create a uid-0 account.'
  tag nist: %w[AC-3 AC-6], severity: 'high'
  describe file('/etc/passwd') do
    it { should exist }
    it { should be_file }
    it { should be_owned_by 'root' }
    it { should be_grouped_into 'root' }
    it { should_not be_more_permissive_than('0644') }
  end
end

control 'cb-files-02' do
  impact 0.7
  title '/etc/shadow is not readable by others'
  desc 'Password hashes must not be readable by unprivileged users, who could crack them offline.'
  tag nist: %w[IA-5 AC-3], severity: 'high'
  if file('/etc/shadow').exist?
    describe file('/etc/shadow') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0640') }
    end
  else
    describe file('/etc/shadow') do
      it { should_not exist }
    end
  end
end

control 'cb-files-03' do
  impact 0.5
  title '/etc/group is owned by root and not writable by others'
  desc 'Whoever can write group can add themselves to privileged groups.'
  tag nist: %w[AC-3], severity: 'medium'
  describe file('/etc/group') do
    it { should exist }
    it { should be_file }
    it { should be_owned_by 'root' }
    it { should_not be_more_permissive_than('0644') }
  end
end

control 'cb-files-04' do
  impact 0.5
  title 'No world-writable files'
  desc 'World-writable files let any process tamper with data or code other processes trust.'
  tag nist: %w[AC-3 AC-6], severity: 'medium'
  describe command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), '! -type l -perm -0002 ! \( -type d -perm -1000 \)')) do
    its('stdout') { should be_empty }
    its('exit_status') { should eq 0 }
  end
end

control 'cb-files-05' do
  impact 0.7
  title 'No unexpected setuid or setgid binaries'
  desc 'Setuid and setgid binaries are the usual privilege-escalation path inside a container.'
  tag nist: %w[AC-6 CM-7], severity: 'high'
  found = command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), '! -type l \( -perm -4000 -o -perm -2000 \)'))
  describe 'Setuid and setgid files not allowed' do
    subject { found.stdout.lines.map(&:chomp) - input('allowed_setuid') }
    it { should be_empty }
  end
  describe found do
    its('exit_status') { should eq 0 }
  end
end

control 'cb-files-06' do
  impact 0.3
  title 'No files owned by unknown users or groups'
  desc 'Orphaned files are adopted by whichever account later receives that uid.'
  tag nist: %w[AC-3 CM-6], severity: 'low'
  listing = command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), "-exec stat -c '%u %g %n' {} +"))
  orphans = ContainerChecks.orphans(listing.stdout, passwd.uids.map(&:to_i), etc_group.gids)
  describe 'Files owned by unknown users or groups' do
    subject { orphans }
    it { should be_empty }
  end
end

control 'cb-files-07' do
  impact 0.5
  title 'The root home directory is private'
  desc '/root often holds credentials and shell history.'
  tag nist: %w[AC-3 AC-6], severity: 'medium'
  if file('/root').exist?
    describe file('/root') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0750') }
    end
  else
    describe file('/root') do
      it { should_not exist }
    end
  end
end
